# Teacher of the demo: mmdet3d's stock 3-class KITTI PointPillars (4.8 M
# parameters) on the synthetic KITTI-format data in data/demo_kitti
# (python tools/create_demo_data.py creates it).
_base_ = ['./_base_/pointpillars_demo_kitti.py']

# The teacher sees every scan twice as often per epoch as the students
# (RepeatDataset x8 instead of x4: 2,048 steps instead of 1,024), so that it
# is ahead of them the way a converged teacher is; the students' schedule is
# the base config's.
train_dataloader = dict(dataset=dict(times=8))
