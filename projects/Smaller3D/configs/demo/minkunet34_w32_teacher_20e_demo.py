# The demo teacher with a 20-epoch schedule (400 steps of batch 2), the
# teacher the demo Smaller3D recipes distill from. The teacher is trained once
# and reused by every student, so it may train longer than the students
# (10 epochs, minkunet34_w32_teacher_demo.py's schedule). At 10 epochs the
# 4x wider W32 had not pulled ahead of the W16 trained alone (validation crop:
# 25.00 vs 25.71 mIoU, 74.2 vs 73.8 % accuracy), so it was no teacher to
# distill from.
_base_ = ['./minkunet34_w32_teacher_demo.py']

epoch_num = 20
lr = 0.008

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(
        type='CosineAnnealingLR',
        begin=0,
        T_max=epoch_num,
        by_epoch=True,
        eta_min=lr * 0.01,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=epoch_num, val_interval=epoch_num)
default_hooks = dict(checkpoint=dict(interval=epoch_num))
