"""Demo-recipe overrides for a small sequence run that takes seconds."""

SMALL_SEQUENCES = (
    "split.train_normal=1",
    "split.test_normal=1",
    "split.test_anomalous=2",
    "frames.n_frames=4",
    "frames.shape=[48, 64]",
    "sequence={fps: 0.2, window_s: 20}",
    "scenarios=[{kind: hotspot, power_W: 2.0, radius_mm: 4.0, duration_s: 20, "
    "layer: middle}]",
)
