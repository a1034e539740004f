"""ROS-free, torch-free inference pipeline pieces (numpy + OpenCV): pre- and post-processing."""
