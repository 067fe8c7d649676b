# 0.5x Cylinder3D student on SemanticKITTI (PVD's student): mmdet3d's stock
# Cylinder3D with the Asymm3DSpconv base width (init_size) halved from 32 to
# 16; the head takes 4 x 16 = 64 channels. Everything else (SegVFE, the
# 480x360x32 cylindrical grid, data, schedule) is the stock config's.
_base_ = ['mmdet3d::cylinder3d/cylinder3d_4xb4-3x_semantickitti.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

base_channels = 16
model = dict(
    backbone=dict(base_channels=base_channels),
    decode_head=dict(channels=4 * base_channels))
