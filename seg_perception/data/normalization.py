"""Default input normalisation of every model (RGB in 0..1, then (x - mean) / std): ImageNet's.

Training configs, exported model sidecars and the inference pipeline carry their own mean/std;
these are the defaults they start from.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
