# Teacher of configs/pointdistiller/pointpillars_*.py: mmdet3d's stock 3-class
# KITTI PointPillars (4.8 M parameters), unchanged. Its published checkpoint
# (64.07 AP on KITTI val in mmdet3d's model zoo) is the default teacher
# checkpoint of those recipes.
_base_ = ['mmdet3d::pointpillars/'
          'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)
