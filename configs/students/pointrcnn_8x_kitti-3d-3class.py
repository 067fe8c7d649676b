# 8x-compressed PointRCNN student on KITTI (3 classes): every width of
# mmdet3d's stock 3-class PointRCNN divided by sqrt(8) (rounded): SA levels,
# FP neck (128 -> 45 output channels), RPN and RoI heads. The FP layers'
# input widths are the sums of the narrower SA / FP outputs. Trained alone
# (python tools/train.py THIS_CONFIG) it is the no-KD baseline of
# configs/pointdistiller/pointrcnn_8x.py.
_base_ = ['mmdet3d::point_rcnn/point-rcnn_8xb2_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

fp_out = 45  # FP-neck output width (teacher 128)
model = dict(
    backbone=dict(sa_channels=(((6, 6, 11), (11, 11, 23)),
                               ((23, 23, 45), (23, 34, 45)),
                               ((45, 69, 91), (45, 69, 91)),
                               ((91, 91, 181), (91, 136, 181)))),
    neck=dict(fp_channels=((544, 181, 181), (271, 181, 181), (215, 91, 91),
                           (92, fp_out, fp_out))),
    rpn_head=dict(
        pred_layer_cfg=dict(
            in_channels=fp_out,
            cls_linear_channels=(91, 91),
            reg_linear_channels=(91, 91))),
    roi_head=dict(
        bbox_head=dict(
            mlp_channels=[fp_out, fp_out],
            sa_channels=((45, 45, 45), (45, 45, 91), (91, 91, 181)),
            pred_layer_cfg=dict(
                in_channels=181,
                cls_conv_channels=(91, 91),
                reg_conv_channels=(91, 91)))))
