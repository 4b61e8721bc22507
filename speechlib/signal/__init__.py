"""Signal processing shared by the recipes: noise, mixing, features, augmentation."""
