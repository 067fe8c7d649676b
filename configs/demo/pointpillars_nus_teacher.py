# Teacher of the nuScenes demo: mmdet3d's stock nuScenes PointPillars with
# FPN (10 classes) on the synthetic nuScenes data in data/demo_nuscenes
# (python tools/create_demo_data.py --dataset nuscenes creates it), on the
# demo's 64 m x 64 m range and 0.5 m pillars.
_base_ = ['./_base_/pointpillars_demo_nus.py']
