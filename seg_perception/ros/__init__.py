"""ROS 2 interface: message conversions and segmentation nodes (the only rclpy users)."""
