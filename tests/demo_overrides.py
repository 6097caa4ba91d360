"""Overrides of the demo recipe for tests that replace its layout."""

# The demo gives its bare tabs an emissivity of 0.1 in the physics and the
# camera. A layout without a ``tabs`` region stops the run at that key unless
# both maps are cleared.
NO_TAB_EMISSIVITY = (
    "physics.emissivity_top_regions={}",
    "camera.emissivity_regions={}",
)
