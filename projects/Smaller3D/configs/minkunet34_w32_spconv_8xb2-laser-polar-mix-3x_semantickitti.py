# Teacher: mmdet3d 1.4's MinkUNet34 W32 (spconv backend) on SemanticKITTI,
# unchanged (69.3 mIoU in mmdet3d's model zoo). Channel plan (32, 64, 128,
# 256 | 256, 128, 96, 96): Res16UNet34C's, the Smaller3D teacher's.
_base_ = [
    'mmdet3d::minkunet/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py'  # noqa: E501
]

custom_imports = dict(
    imports=['pointdistiller_mm', 'projects.Smaller3D.smaller3d'],
    allow_failed_imports=False)
