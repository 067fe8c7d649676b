# PointDistiller on KITTI (3 classes): the 16x SECOND student
# (configs/students/second_16x_kitti-3d-3class.py) learns from mmdet3d's
# stock SECOND through both BEV maps of the backbone (stride 8: 200 x 176
# cells, stride 16: 100 x 88): per sample the top-N cells by the number of
# points they hold, local graphs of K neighbours in the teacher's feature
# space, loss reweighted by point count. The student's schedule (mmdet3d's
# 40 epochs x repeat 2) is kept.
_base_ = ['../students/second_16x_kitti-3d-3class.py']

teacher_config = ('configs/pointdistiller/teachers/'
                  'second_hv_secfpn_8xb6-80e_kitti-3d-3class.py')
# mmdet3d's published checkpoint of that config; a local file or a work dir
# (its newest checkpoint is used) also works
teacher_checkpoint = (
    'https://download.openmmlab.com/mmdetection3d/v1.1.0_models/second/'
    'second_hv_secfpn_8xb6-80e_kitti-3d-3class/'
    'second_hv_secfpn_8xb6-80e_kitti-3d-3class-b086d0a3.pth')

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    # the backbone returns (stride-8 map, stride-16 map)
    student_recorders=dict(
        bev0=dict(source='backbone', index=0),
        bev1=dict(source='backbone', index=1)),
    teacher_recorders=dict(
        bev0=dict(source='backbone', index=0),
        bev1=dict(source='backbone', index=1)),
    distill_terms=dict(
        bev0=dict(
            student='bev0',
            teacher='bev0',
            rows=dict(type='BEVRows', score='point_count'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=32,
                teacher_channels=128,
                num_samples=256,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                local_distill=True,
                tau=1.0,
                norm='mse',
                loss_weight=1.0)),
        bev1=dict(
            student='bev1',
            teacher='bev1',
            rows=dict(type='BEVRows', score='point_count'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=64,
                teacher_channels=256,
                num_samples=256,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                local_distill=True,
                tau=1.0,
                norm='mse',
                loss_weight=1.0))))

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant')]
