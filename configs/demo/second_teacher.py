# SECOND teacher of the demo: mmdet3d's stock 3-class KITTI SECOND (5.3 M
# parameters) on the synthetic KITTI-format data in data/demo_kitti
# (python tools/create_demo_data.py creates it).
_base_ = ['./_base_/second_demo_kitti.py']
