# 8x-compressed PointRCNN student on the demo data (every width divided by
# sqrt(8), FP neck 128 -> 45; see configs/students/pointrcnn_8x_*.py).
# Trained alone it is the no-KD baseline of pointrcnn_8x_pointdistiller.py.
_base_ = ['./_base_/pointrcnn_demo_kitti.py']

fp_out = 45
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
