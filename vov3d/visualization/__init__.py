"""What the model sees: Grad-CAM heat maps, colour maps, and drawing on frames and charts."""
