# PointRCNN teacher of the demo: mmdet3d's stock 3-class KITTI PointRCNN
# (4.1 M parameters) on the synthetic KITTI-format data in data/demo_kitti
# (python tools/create_demo_data.py creates it), 4,096 points per scan.
_base_ = ['./_base_/pointrcnn_demo_kitti.py']
