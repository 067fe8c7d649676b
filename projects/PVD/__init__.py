"""PVD: point-to-voxel knowledge distillation for LiDAR segmentors."""
