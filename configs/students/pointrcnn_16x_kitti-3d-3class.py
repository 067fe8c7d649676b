# 16x-compressed PointRCNN student on KITTI (3 classes): every width of
# mmdet3d's stock 3-class PointRCNN divided by sqrt(16) = 4: SA levels, FP
# neck (128 -> 32 output channels), RPN and RoI heads. The FP layers' input
# widths are the sums of the narrower SA / FP outputs. Trained alone it is
# the no-KD baseline of configs/pointdistiller/pointrcnn_16x.py.
_base_ = ['mmdet3d::point_rcnn/point-rcnn_8xb2_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

fp_out = 32  # FP-neck output width (teacher 128)
model = dict(
    backbone=dict(sa_channels=(((4, 4, 8), (8, 8, 16)),
                               ((16, 16, 32), (16, 24, 32)),
                               ((32, 49, 64), (32, 49, 64)),
                               ((64, 64, 128), (64, 96, 128)))),
    neck=dict(fp_channels=((384, 128, 128), (192, 128, 128), (152, 64, 64),
                           (65, fp_out, fp_out))),
    rpn_head=dict(
        pred_layer_cfg=dict(
            in_channels=fp_out,
            cls_linear_channels=(64, 64),
            reg_linear_channels=(64, 64))),
    roi_head=dict(
        bbox_head=dict(
            mlp_channels=[fp_out, fp_out],
            sa_channels=((32, 32, 32), (32, 32, 64), (64, 64, 128)),
            pred_layer_cfg=dict(
                in_channels=128,
                cls_conv_channels=(64, 64),
                reg_conv_channels=(64, 64)))))
