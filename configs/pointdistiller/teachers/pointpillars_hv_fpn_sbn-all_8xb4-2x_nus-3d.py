# Teacher of configs/pointdistiller/pointpillars_nus_*.py: mmdet3d's stock
# nuScenes PointPillars with FPN (10 classes), unchanged. Its published
# checkpoint (39.71 mAP / 53.15 NDS on nuScenes val in mmdet3d's model zoo)
# is the default teacher checkpoint of those recipes.
_base_ = ['mmdet3d::pointpillars/pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)
