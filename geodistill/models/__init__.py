"""geodistill.models: backbones, decoders, BEV template, masked correlation, the localizer.

Submodules are imported on use (``from geodistill.models.localizer import LocalizerNet``) so that importing the
package stays cheap.
"""
