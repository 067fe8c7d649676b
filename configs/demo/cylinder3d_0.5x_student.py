# 0.5x Cylinder3D student of the demo (PVD's student): the demo teacher with
# the Asymm3DSpconv base width (init_size) halved from 32 to 16, so every
# backbone width halves and the head takes 64 channels. Voxel encoder, grid,
# data and schedule are the teacher's.
_base_ = ['./cylinder3d_teacher.py']

base_channels = 16
model = dict(
    backbone=dict(base_channels=base_channels),
    decode_head=dict(channels=4 * base_channels))
