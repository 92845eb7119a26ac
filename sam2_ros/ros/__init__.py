"""The ROS 2 adapter: nodes, message conversions, parameters and tools."""
