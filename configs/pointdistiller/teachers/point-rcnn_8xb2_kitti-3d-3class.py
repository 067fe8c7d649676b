# Teacher of configs/pointdistiller/pointrcnn_*.py: mmdet3d's stock 3-class
# KITTI PointRCNN (4.1 M parameters), unchanged. Its published checkpoint
# (70.83 mAP on KITTI val in mmdet3d's model zoo) is the default teacher
# checkpoint of those recipes.
_base_ = ['mmdet3d::point_rcnn/point-rcnn_8xb2_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)
