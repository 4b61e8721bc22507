"""Neural network building blocks shared by the recipes: models, losses, layers."""
