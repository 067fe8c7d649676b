# Teacher of the demo: mmdet3d's stock 3-class KITTI PointPillars (4.8 M
# parameters) on the synthetic KITTI-format data in data/demo_kitti
# (python tools/create_demo_data.py creates it).
_base_ = ['./_base_/pointpillars_demo_kitti.py']
