# mmdet3d's stock Cylinder3D on SemanticKITTI (63.1 mIoU), the teacher of
# pvd_cylinder3d_0.5x_semantickitti.py.
_base_ = ['mmdet3d::cylinder3d/cylinder3d_4xb4-3x_semantickitti.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)
