# PointDistiller on nuScenes: the 2x PointPillars student
# (configs/students/pointpillars_2x_nus-3d.py) learns from mmdet3d's stock
# nuScenes PointPillars (FPN) through FPN level 0 (stride 2 of the 0.25 m
# pillar grid: 200 x 200 BEV cells, teacher 256 / student 182 channels): per
# sample the top-N cells by the number of points they hold (N 256), local
# graphs of K 128 neighbours in the teacher's feature space, loss reweighted
# by point count. The student's schedule (mmdet3d's 2x, 24 epochs) is kept.
_base_ = ['../students/pointpillars_2x_nus-3d.py']

teacher_config = ('configs/pointdistiller/teachers/'
                  'pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py')
# mmdet3d's published checkpoint of that config; a local file or a work dir
# (its newest checkpoint is used) also works
teacher_checkpoint = (
    'https://download.openmmlab.com/mmdetection3d/v1.0.0_models/pointpillars/'
    'hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d/'
    'hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d_20210826_104936-fca299c1.pth')

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    # MVXFasterRCNN: the FPN returns its levels finest first
    student_recorders=dict(fpn0=dict(source='pts_neck', index=0)),
    teacher_recorders=dict(fpn0=dict(source='pts_neck', index=0)),
    distill_terms=dict(
        fpn0=dict(
            student='fpn0',
            teacher='fpn0',
            rows=dict(type='BEVRows', score='point_count'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=182,
                teacher_channels=256,
                num_samples=256,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                local_distill=True,
                # BEV-cell counts are not capped (64 points per pillar,
                # four pillars per stride-2 cell); measure with
                # tools/analysis/reweight_stats.py before changing
                tau=1.0,
                norm='mse',
                loss_weight=1.0))))

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant')]
