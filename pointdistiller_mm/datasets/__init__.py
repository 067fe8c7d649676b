"""Synthetic LiDAR data: a ray-casting LiDAR simulator and a KITTI-format
scene generator that runs mmdet3d's own KITTI converter."""
from .lidar_sim import (Box, Foliage, GroundPlane, LidarConfig, LidarSimulator,
                        Scan, VerticalCylinder, hdl64_elevations)
from .synthetic_kitti import (DEFAULT_CLASSES, FrameLabel, KittiCalibration,
                              ObjectClassSpec, Scene, SceneConfig, SceneObject,
                              create_demo_kitti, label_scene,
                              load_mmdet3d_kitti_converters, object_primitives,
                              run_kitti_converter, sample_scene,
                              simulate_frame, write_frame)

__all__ = [
    'Box', 'Foliage', 'GroundPlane', 'LidarConfig', 'LidarSimulator', 'Scan',
    'VerticalCylinder', 'hdl64_elevations', 'DEFAULT_CLASSES', 'FrameLabel',
    'KittiCalibration', 'ObjectClassSpec', 'Scene', 'SceneConfig',
    'SceneObject', 'create_demo_kitti', 'label_scene',
    'load_mmdet3d_kitti_converters', 'object_primitives',
    'run_kitti_converter', 'sample_scene', 'simulate_frame', 'write_frame'
]
