"""The five small ResNets of the cascade (Keras 3, functional API).

Only these layers are used, so that every Kedge runtime can run them: Conv2D, Conv3D, BatchNormalization, ReLU,
Add, MaxPooling2D/3D, AveragePooling3D, GlobalAveragePooling2D/3D, Dense, UpSampling2D, Concatenate, Dropout.
"""
import keras
from keras import layers

# Few training steps per stage: Keras's default 0.99 would leave the moving statistics half-way to their values.
BN_MOMENTUM = 0.9


def _conv(dims, f, k, name, padding="same"):
    cls = layers.Conv3D if dims == 3 else layers.Conv2D
    return cls(f, k, padding=padding, use_bias=False, name=name)


def conv_bn_relu(x, dims, f, name, k=3):
    x = _conv(dims, f, k, name + "_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


def res_block(x, dims, f, name):
    """Conv-BN-ReLU-Conv-BN + shortcut (1x1 conv + BN when the width changes), then ReLU."""
    short = x
    if x.shape[-1] != f:
        short = _conv(dims, f, 1, name + "_proj")(x)
        short = layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_proj_bn")(short)
    y = conv_bn_relu(x, dims, f, name + "_a")
    y = _conv(dims, f, 3, name + "_b_conv")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_b_bn")(y)
    y = layers.Add(name=name + "_add")([short, y])
    return layers.ReLU(name=name + "_out")(y)


def sex_net(shape):
    """Whole volume (z, y, x, 1) -> P(male)."""
    inp = keras.Input(shape=tuple(shape) + (1,), name="volume")
    x = layers.AveragePooling3D((2, 4, 4), name="downsample")(inp)
    x = conv_bn_relu(x, 3, 8, "stem")
    x = layers.MaxPooling3D(2, name="pool1")(x)
    x = res_block(x, 3, 16, "res2")
    x = layers.MaxPooling3D(2, name="pool2")(x)
    x = res_block(x, 3, 32, "res3")
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    x = layers.Dropout(0.2, name="drop")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_male")(x)
    return keras.Model(inp, out, name="cascade_sex")


def roi_net(hw):
    """One axial slice (y, x, 1) -> per-pixel nodule probability (y, x, 1); a small residual U-Net.
    Fully convolutional: trained on crops, run on whole slices (both sides divisible by 4)."""
    inp = keras.Input(shape=tuple(hw) + (1,), name="slice")
    s0 = conv_bn_relu(inp, 2, 8, "stem")
    x = layers.MaxPooling2D(2, name="pool1")(s0)
    s1 = res_block(x, 2, 16, "res1")
    x = layers.MaxPooling2D(2, name="pool2")(s1)
    x = res_block(x, 2, 32, "res2")
    x = layers.UpSampling2D(2, name="up1")(x)
    x = layers.Concatenate(name="cat1")([x, s1])
    x = conv_bn_relu(x, 2, 16, "dec1")
    x = layers.UpSampling2D(2, name="up0")(x)
    x = layers.Concatenate(name="cat0")([x, s0])
    x = conv_bn_relu(x, 2, 8, "dec0")
    out = layers.Conv2D(1, 1, activation="sigmoid", name="heatmap")(x)
    return keras.Model(inp, out, name="cascade_roi")


def fp_net(cube):
    """Candidate cube (z, y, x, 1) -> logit that the candidate is a real nodule (linear output)."""
    inp = keras.Input(shape=tuple(cube) + (1,), name="cube")
    x = conv_bn_relu(inp, 3, 8, "stem")
    x = layers.MaxPooling3D(2, name="pool1")(x)
    x = res_block(x, 3, 16, "res1")
    x = layers.MaxPooling3D(2, name="pool2")(x)
    x = res_block(x, 3, 32, "res2")
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    out = layers.Dense(1, name="logit")(x)
    return keras.Model(inp, out, name="cascade_fp")


def box_net(patch, channels):
    """Patch (h, w, c) centred on a candidate -> (s_cy, s_cx, s_h, s_w), about [0, 1], relative to the patch
    (linear outputs: a sigmoid head saturated during training; the glue clamps to [0, 1]).

    A 'valid' convolution over the last 4x4 map keeps the position information that global pooling would lose
    (it plays the role of Flatten + Dense)."""
    inp = keras.Input(shape=tuple(patch) + (channels,), name="patch")
    x = conv_bn_relu(inp, 2, 16, "stem")
    x = res_block(x, 2, 16, "res1")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = res_block(x, 2, 32, "res2")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = res_block(x, 2, 32, "res3")
    x = layers.MaxPooling2D(2, name="pool3")(x)
    k = (patch[0] // 8, patch[1] // 8)
    x = layers.Conv2D(64, k, padding="valid", name="head_conv")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(4, name="box")(x)
    return keras.Model(inp, out, name="cascade_box")


def malignancy_net(patch, channels):
    """Patch (h, w, c) centred on a box -> P(malignant)."""
    inp = keras.Input(shape=tuple(patch) + (channels,), name="patch")
    x = conv_bn_relu(inp, 2, 16, "stem")
    x = res_block(x, 2, 16, "res1")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = res_block(x, 2, 32, "res2")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = res_block(x, 2, 32, "res3")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="drop")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_malignant")(x)
    return keras.Model(inp, out, name="cascade_malignancy")
