"""Per-trace labels shared by every loader: the indicator of each dataset."""

from __future__ import annotations

import re

__all__ = ["SPIKEFINDER_INDICATORS", "indicator_from_label"]

#: Indicator of each SpikeFinder dataset (Berens et al. 2018, PLoS Comput Biol,
#: Table 1; the test datasets 1-5 use the same indicators as training 1-5).
SPIKEFINDER_INDICATORS = {
    "1": "OGB-1",
    "2": "OGB-1",
    "3": "GCaMP6s",
    "4": "OGB-1",
    "5": "GCaMP6s",
    "6": "GCaMP5k",
    "7": "GCaMP6f",
    "8": "GCaMP6s",
    "9": "jRCaMP1a",
    "10": "jRGECO1a",
}

#: Canonical names of indicators spelled otherwise in CASCADE folder names.
INDICATOR_ALIASES = {
    "OGB1": "OGB-1",
    "Cal520": "Cal-520",
    "jGECO1a": "jRGECO1a",
    "GCaMP8m": "jGCaMP8m",
    "GCaMP8f": "jGCaMP8f",
    "GCaMP8s": "jGCaMP8s",
}

# "DS09-GCaMP6f-m-V1" and "DS18-R-CaMP-m-CA3" (CASCADE), "sim-GCaMP6s" (make_calcium)
_LABEL_RE = re.compile(r"^(?:DS\d+-(R-CaMP|[^-]+)(?:-.*)?|sim-(.+))$")


def indicator_from_label(label):
    """Indicator named by a dataset label, or ``"unknown"``.

    SpikeFinder numbers are looked up in :data:`SPIKEFINDER_INDICATORS`; CASCADE
    folder names (``"DS09-GCaMP6f-m-V1"``) and simulator labels
    (``"sim-GCaMP6s"``) carry the indicator as their second part, spelled as in
    :data:`INDICATOR_ALIASES` where CASCADE abbreviates it.

    Examples
    --------
    >>> from calgan_sklearn.datasets._labels import indicator_from_label
    >>> [indicator_from_label(s) for s in ("5", "DS18-R-CaMP-m-CA3", "DS31-GCaMP8m-m-V1")]
    ['GCaMP6s', 'R-CaMP', 'jGCaMP8m']
    """
    label = str(label)
    if label in SPIKEFINDER_INDICATORS:
        return SPIKEFINDER_INDICATORS[label]
    match = _LABEL_RE.match(label)
    if not match:
        return "unknown"
    name = match.group(1) or match.group(2)
    return INDICATOR_ALIASES.get(name, name)
