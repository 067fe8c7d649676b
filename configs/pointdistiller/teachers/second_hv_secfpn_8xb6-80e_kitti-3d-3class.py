# Teacher of configs/pointdistiller/second_*.py: mmdet3d's stock 3-class KITTI
# SECOND (5.3 M parameters), unchanged. Its published checkpoint (65.3 mAP on
# KITTI val in mmdet3d's model zoo) is the default teacher checkpoint of those
# recipes.
_base_ = ['mmdet3d::second/'
          'second_hv_secfpn_8xb6-80e_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)
