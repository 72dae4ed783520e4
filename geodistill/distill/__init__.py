"""GeoDistill self-distillation: the EMA teacher (``ema``), the student's masks (``masking``) and the
teacher-student pipeline with its step benchmark (``pipeline``). Submodules import on use."""
