"""Recipes: YAML files that say what to generate, validated into typed objects."""

from thermosynth.recipe.loading import (
    LoadedRecipe,
    load_demo_recipe,
    load_recipe,
    parse_recipe,
)
from thermosynth.recipe.models import Recipe

__all__ = ["LoadedRecipe", "Recipe", "load_demo_recipe", "load_recipe", "parse_recipe"]
