# PointDistiller on KITTI (3 classes): the 16x PointPillars student
# (configs/students/pointpillars_16x_kitti-3d-3class.py) learns from
# mmdet3d's stock PointPillars through the pillar encoder output: per sample
# the top-N pillars by point count, local graphs of K neighbours in the
# teacher's feature space, loss reweighted by point count. The student's
# schedule (mmdet3d's 80 epochs x repeat 2) is kept.
_base_ = ['../students/pointpillars_16x_kitti-3d-3class.py']

teacher_config = ('configs/pointdistiller/teachers/'
                  'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py')
# mmdet3d's published checkpoint of that config; a local file or a work dir
# (its newest checkpoint is used) also works
teacher_checkpoint = (
    'https://download.openmmlab.com/mmdetection3d/v1.0.0_models/pointpillars/'
    'hv_pointpillars_secfpn_6x8_160e_kitti-3d-3class/'
    'hv_pointpillars_secfpn_6x8_160e_kitti-3d-3class_'
    '20220301_150306-37dc2420.pth')

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    student_recorders=dict(pillars=dict(source='voxel_encoder')),
    teacher_recorders=dict(pillars=dict(source='voxel_encoder')),
    distill_terms=dict(
        pillars=dict(
            student='pillars',
            teacher='pillars',
            rows=dict(type='VoxelRows'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=16,
                teacher_channels=64,
                num_samples=6000,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                local_distill=True,
                # phi_max about 13 on 0.16 m pillars (reweight_stats.py)
                tau=10.0,
                norm='mse',
                loss_weight=1.0))))

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant')]
