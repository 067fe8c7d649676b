"""Synthetic LiDAR data: a ray-casting LiDAR simulator, a KITTI-format scene
generator that runs mmdet3d's own KITTI converter, a SemanticKITTI-format
generator that runs mmdet3d's own SemanticKITTI converter, and a
nuScenes-format generator (32-beam LiDAR, ego motion, sweeps, instance
tracks) that runs mmdet3d's own nuScenes converter."""
from .lidar_sim import (Box, Foliage, GroundPlane, LidarConfig, LidarSimulator,
                        Scan, VerticalCylinder, hdl64_elevations)
from .synthetic_kitti import (DEFAULT_CLASSES, FrameLabel, KittiCalibration,
                              ObjectClassSpec, Scene, SceneConfig, SceneObject,
                              create_demo_kitti, label_scene,
                              load_mmdet3d_kitti_converters, object_primitives,
                              run_kitti_converter, sample_scene,
                              simulate_frame, write_frame)
from .synthetic_semantickitti import (SemanticSceneConfig,
                                      create_demo_semantickitti,
                                      simulate_semantic_frame)
from .synthetic_nuscenes import (NUS_CLASSES, NusClassSpec,
                                 NuScenesSimConfig, check_nuscenes_metric,
                                 create_demo_nuscenes, hdl32_lidar_config,
                                 run_nuscenes_converter, simulate_scene)

__all__ = [
    'Box', 'Foliage', 'GroundPlane', 'LidarConfig', 'LidarSimulator', 'Scan',
    'VerticalCylinder', 'hdl64_elevations', 'DEFAULT_CLASSES', 'FrameLabel',
    'KittiCalibration', 'ObjectClassSpec', 'Scene', 'SceneConfig',
    'SceneObject', 'create_demo_kitti', 'label_scene',
    'load_mmdet3d_kitti_converters', 'object_primitives',
    'run_kitti_converter', 'sample_scene', 'simulate_frame', 'write_frame',
    'SemanticSceneConfig', 'create_demo_semantickitti',
    'simulate_semantic_frame', 'NUS_CLASSES', 'NusClassSpec',
    'NuScenesSimConfig', 'check_nuscenes_metric', 'create_demo_nuscenes',
    'hdl32_lidar_config', 'run_nuscenes_converter', 'simulate_scene'
]
