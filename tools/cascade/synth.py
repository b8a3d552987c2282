"""Seeded synthetic chest CT volumes (Hounsfield units) with sex-dependent anatomy and labelled lung nodules.

The phantom is a chest at roughly one third of adult size on a grid of SHAPE voxels at SPACING mm, so that the
whole cascade runs in a browser in seconds, while the voxel spacing, the HU values and the nodules (3-30 mm) are
at true scale: a nodule looks at this resolution as it would in a real low-dose CT.

What each stage can learn from it:
- sex: body size and shape, subcutaneous fat vs muscle thickness, breast tissue (female) in front of the chest;
- ROI / false positives: nodules are compact blobs, vessels are branching tubes (round in one slice, elongated
  across slices), airways are air-filled rings;
- boxes: each nodule's extent in its slices;
- malignancy: malignant nodules are larger, lobulated, spiculated and often part-solid; benign ones are small,
  smooth, solid, ground-glass or calcified.

    python3 tools/cascade/synth.py --seed 7 --out /tmp/vol.npy     # writes vol.npy (int16 HU) and vol.json (labels)
"""
import argparse
import json

import numpy as np
from scipy import ndimage

SHAPE = (32, 80, 80)  # (z, y, x): z runs feet -> head, y anterior -> posterior, x patient right -> left
SPACING = (2.5, 1.4, 1.4)  # mm, (z, y, x)
HU_MIN, HU_MAX = -1024, 3071
PV_EDGE_MM = 1.0  # width of the partial-volume ramp at every object's surface


def _axes_mm():
    """Voxel-centre coordinates in mm, origin at the volume centre, broadcastable to SHAPE."""
    out = []
    for axis, (n, s) in enumerate(zip(SHAPE, SPACING)):
        c = ((np.arange(n, dtype=np.float32) - (n - 1) / 2.0) * s).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = n
        out.append(c.reshape(shape))
    return out


ZZ, YY, XX = _axes_mm()


def mm_to_vox(p):
    return [p[i] / SPACING[i] + (SHAPE[i] - 1) / 2.0 for i in range(3)]


def vox_to_mm(v):
    return [(v[i] - (SHAPE[i] - 1) / 2.0) * SPACING[i] for i in range(3)]


def _box(lo_mm, hi_mm):
    """Voxel slices covering the mm box [lo, hi] (clipped), or None when empty."""
    sl = []
    for i in range(3):
        a = int(np.floor(lo_mm[i] / SPACING[i] + (SHAPE[i] - 1) / 2.0))
        b = int(np.ceil(hi_mm[i] / SPACING[i] + (SHAPE[i] - 1) / 2.0)) + 1
        a, b = max(a, 0), min(b, SHAPE[i])
        if a >= b:
            return None
        sl.append(slice(a, b))
    return tuple(sl)


def _sub(sl):
    return ZZ[sl[0], :, :], YY[:, sl[1], :], XX[:, :, sl[2]]


def capsule(acc, p0, p1, r0, r1, edge=PV_EDGE_MM):
    """Max-composites into acc the coverage (0..1) of a capsule from p0 (radius r0) to p1 (radius r1), mm."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    rmax = max(r0, r1) + edge
    sl = _box(np.minimum(p0, p1) - rmax, np.maximum(p0, p1) + rmax)
    if sl is None:
        return
    z, y, x = _sub(sl)
    d = p1 - p0
    dd = float(d @ d)
    vz, vy, vx = z - p0[0], y - p0[1], x - p0[2]
    if dd > 0:
        t = np.clip((vz * d[0] + vy * d[1] + vx * d[2]) / dd, 0.0, 1.0)
    else:
        t = np.zeros((1, 1, 1), np.float32)
    dist = np.sqrt((vz - t * d[0]) ** 2 + (vy - t * d[1]) ** 2 + (vx - t * d[2]) ** 2)
    r = r0 + t * (r1 - r0)
    a = np.clip((r - dist) / edge + 0.5, 0.0, 1.0)
    np.maximum(acc[sl], a, out=acc[sl])


def ellipsoid(acc, c, radii, edge=PV_EDGE_MM):
    """Max-composites an axis-aligned ellipsoid (centre c, semi-axes radii, mm) into acc."""
    c = np.asarray(c, np.float32)
    radii = np.asarray(radii, np.float32)
    sl = _box(c - radii - edge, c + radii + edge)
    if sl is None:
        return
    z, y, x = _sub(sl)
    q = np.sqrt(((z - c[0]) / radii[0]) ** 2 + ((y - c[1]) / radii[1]) ** 2 + ((x - c[2]) / radii[2]) ** 2)
    # distance to the surface, approximately, in mm along the smallest axis
    a = np.clip((1.0 - q) * float(radii.min()) / edge + 0.5, 0.0, 1.0)
    np.maximum(acc[sl], a, out=acc[sl])


def ellipse_cover(cy, cx, ay, ax, edge=PV_EDGE_MM):
    """Coverage of a z-varying elliptic cylinder; cy, cx, ay, ax are arrays over z (shape (Z,1,1))."""
    q = np.sqrt(((YY - cy) / ay) ** 2 + ((XX - cx) / ax) ** 2)
    return np.clip((1.0 - q) * np.minimum(ay, ax) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def blend(vol, alpha, hu):
    vol *= 1.0 - alpha
    vol += alpha * np.asarray(hu, np.float32)


def smooth_noise(rng, sigma_vox, amplitude):
    n = rng.standard_normal(SHAPE).astype(np.float32)
    n = ndimage.gaussian_filter(n, sigma_vox)
    n *= amplitude / max(float(n.std()), 1e-6)
    return n


def _tree(rng, acc, start, direction, radius, depth, lung_pts, min_r=0.55, shrink=0.74):
    """A branching tube (vessel or airway), each branch aimed at a random lung point."""
    stack = [(np.asarray(start, np.float32), np.asarray(direction, np.float32), radius, depth)]
    segments = []
    while stack:
        p, d, r, k = stack.pop()
        target = lung_pts[rng.integers(len(lung_pts))]
        aim = target - p
        n = np.linalg.norm(aim)
        if n < 1e-3:
            continue
        aim /= n
        d = 0.45 * d + 0.55 * aim
        d /= max(np.linalg.norm(d), 1e-6)
        length = rng.uniform(6.0, 14.0) * (0.6 + 0.4 * r / max(radius, 1e-3)) + 4.0 * r
        q = p + d * length
        r1 = max(r * shrink, min_r)
        capsule(acc, p, q, r, r1)
        segments.append((p, q, r, r1))
        if k > 1 and r1 > min_r:
            for _ in range(2):
                jitter = rng.normal(0.0, 0.6, 3).astype(np.float32)
                stack.append((q, d + jitter, r1, k - 1))
    return segments


def _nodule(rng, malignant, size_mm, kind):
    """Describes a nodule's parts relative to its centre (mm): solid and ground-glass components and spicules."""
    r = size_mm / 2.0
    parts = {"solid": [], "ggo": [], "spicules": []}

    main = np.array([rng.uniform(0.85, 1.15) * r for _ in range(3)])
    if kind == "ggo":
        parts["ggo"].append((np.zeros(3), main))
    elif kind == "part-solid":
        parts["ggo"].append((np.zeros(3), main))
        core = main * rng.uniform(0.4, 0.6)
        parts["solid"].append((rng.normal(0, 0.15 * r, 3), core))
    else:
        parts["solid"].append((np.zeros(3), main))
    if malignant:
        target = parts["ggo"] if kind == "ggo" else parts["solid"] if kind == "solid" else parts["ggo"]
        for _ in range(int(rng.integers(2, 5))):  # lobulation: bumps on the surface
            u = rng.normal(0, 1, 3)
            u /= np.linalg.norm(u)
            target.append((u * r * rng.uniform(0.55, 0.8), main * rng.uniform(0.35, 0.55)))
        n_spic = int(rng.integers(5, 13)) if kind != "ggo" else int(rng.integers(0, 4))
        for _ in range(n_spic):
            u = rng.normal(0, 1, 3)
            u /= np.linalg.norm(u)
            length = r * rng.uniform(0.5, 1.0) + rng.uniform(2.0, 6.0)
            parts["spicules"].append((u * r * 0.8, u * (r + length), rng.uniform(0.8, 1.2)))
    return parts


def generate(seed, force_cancer=None, force_sex=None):
    """One volume: (hu int16 (Z,Y,X), label dict, extras dict with 'nodule_map' (int8) and 'vessel' (bool))."""
    rng = np.random.default_rng(seed)
    male = bool(rng.random() < 0.5) if force_sex is None else force_sex == "M"
    Z = SHAPE[0]
    zn = (np.arange(Z, dtype=np.float32) - (Z - 1) / 2.0) / ((Z - 1) / 2.0)  # -1 (feet) .. 1 (head)
    zn3 = zn.reshape(Z, 1, 1)

    # -- body: skin/fat, muscle, thoracic cavity ------------------------------------------------------------
    if male:
        ax = float(np.clip(rng.normal(47.5, 2.2), 42.0, 52.0))
        ratio = rng.normal(0.71, 0.035)
        fat = rng.uniform(2.0, 5.0)
        muscle = rng.uniform(5.0, 7.5)
    else:
        ax = float(np.clip(rng.normal(42.5, 2.2), 37.0, 48.0))
        ratio = rng.normal(0.75, 0.035)
        fat = rng.uniform(4.0, 7.5)
        muscle = rng.uniform(3.5, 5.5)
    ay = ax * ratio
    taper = 1.0 + rng.uniform(0.0, 0.05) * zn3 * -1.0  # slightly wider towards the abdomen
    cy0, cx0 = rng.uniform(-2.0, 2.0) + 3.0, rng.uniform(-2.0, 2.0)
    bx, by = ax * taper, ay * taper
    vol = np.full(SHAPE, -1000.0, np.float32)
    body = ellipse_cover(cy0, cx0, by, bx)
    blend(vol, body, -100.0 + rng.normal(0, 8))
    musc = ellipse_cover(cy0, cx0, by - fat, bx - fat)
    blend(vol, musc, rng.uniform(40.0, 55.0))
    cav_y, cav_x = by - fat - muscle, bx - fat - muscle
    cav = ellipse_cover(cy0 + 0.5, cx0, cav_y, cav_x)
    cav_y, cav_x = float(ay - fat - muscle), float(ax - fat - muscle)  # scalars from here on
    blend(vol, cav, rng.uniform(20.0, 40.0))

    # breasts: fat with glandular strands, in front of the pectoral muscle
    breast = np.zeros(SHAPE, np.float32)
    has_breasts = (not male and rng.random() < 0.97) or (male and rng.random() < 0.04)
    if has_breasts:
        scale = rng.uniform(0.55, 1.15) if not male else rng.uniform(0.3, 0.5)
        zc = rng.uniform(-20.0, 10.0)
        for side in (-1.0, 1.0):
            c = (zc + rng.normal(0, 2), cy0 - ay * 0.78, cx0 + side * ax * rng.uniform(0.42, 0.55))
            radii = (rng.uniform(18, 28) * scale, rng.uniform(8, 13) * scale, rng.uniform(12, 17) * scale)
            ellipsoid(breast, c, radii)
        gland = np.clip(0.5 + smooth_noise(rng, (1.0, 1.5, 1.5), 0.35), 0.0, 1.0)
        blend(vol, breast, -95.0 + gland * 120.0)

    # -- spine and ribs ---------------------------------------------------------------------------------------
    bone = np.zeros(SHAPE, np.float32)
    marrow = np.zeros(SHAPE, np.float32)
    sy = float(cy0 + ay - fat - muscle * 0.5 - 9.0)
    top, bot = ZZ.max() + 5.0, ZZ.min() - 5.0
    capsule(bone, (bot, sy, cx0), (top, sy, cx0), 8.0, 8.0)
    capsule(marrow, (bot, sy, cx0), (top, sy, cx0), 6.0, 6.0)
    capsule(bone, (bot, sy + 11.0, cx0), (top, sy + 11.0, cx0), 3.0, 3.0)
    ring_y, ring_x = float(ay - fat - muscle * 0.45), float(ax - fat - muscle * 0.45)
    z0 = rng.uniform(-12.0, 12.0)
    for k in range(-4, 5):
        zr = z0 + k * rng.uniform(19.0, 21.0)
        for side in (-1.0, 1.0):
            pts = []
            for th in np.linspace(0.35, 2.55, 12):  # from beside the spine round to the front
                pts.append((zr - 16.0 * th / 2.55, cy0 + ring_y * np.cos(th), cx0 + side * ring_x * np.sin(th)))
            for a, b in zip(pts[:-1], pts[1:]):
                capsule(bone, a, b, 2.6, 2.6)
    blend(vol, bone, rng.uniform(550.0, 750.0))
    blend(vol, marrow, rng.uniform(180.0, 280.0))
    canal = np.zeros(SHAPE, np.float32)
    capsule(canal, (bot, sy + 8.0, cx0), (top, sy + 8.0, cx0), 3.5, 3.5)
    blend(vol, canal, 15.0)

    # -- mediastinum: fat, heart, aorta ------------------------------------------------------------------------
    med = np.zeros(SHAPE, np.float32)
    ellipsoid(med, (0.0, cy0 - 2.0, cx0), (60.0, cav_y * 0.55, cav_x * 0.2))
    blend(vol, med, -85.0)
    heart = np.zeros(SHAPE, np.float32)
    hz = rng.uniform(-45.0, -25.0)
    ellipsoid(heart, (hz, cy0 - cav_y * 0.25, cx0 + cav_x * 0.12), (30.0, cav_y * 0.5, cav_x * 0.36))
    blend(vol, heart, rng.uniform(35.0, 50.0))
    aorta = np.zeros(SHAPE, np.float32)
    capsule(aorta, (bot, sy - 12.0, cx0 + 6.0), (top, sy - 12.0, cx0 + 6.0), 5.5, 5.5)
    capsule(aorta, (top, cy0 - cav_y * 0.2, cx0 - 2.0), (top, sy - 12.0, cx0 + 6.0), 5.5, 5.5)
    blend(vol, aorta, rng.uniform(35.0, 50.0))

    # -- lungs --------------------------------------------------------------------------------------------------
    shrink = (0.78 + 0.22 * np.clip(1.0 - (zn3 + 1.0) * 0.35, 0.0, 1.0)).astype(np.float32)  # narrower at the top
    lung = np.zeros(SHAPE, np.float32)
    for side in (-1.0, 1.0):
        ly, lx = (by - fat - muscle) * 0.82 * shrink, (bx - fat - muscle) * 0.45 * shrink
        cxl = cx0 + side * cav_x * 0.53
        lung = np.maximum(lung, ellipse_cover(cy0 + 1.5, cxl, ly, lx))
    inner = ellipse_cover(cy0 + 0.5, cx0, by - fat - muscle - 3.5, bx - fat - muscle - 3.5)
    lung = np.minimum(lung, inner)
    lung = np.minimum(lung, 1.0 - heart)
    lung = np.minimum(lung, 1.0 - med * 0.999)
    lung_hu = -860.0 + rng.normal(0, 15) + smooth_noise(rng, (0.8, 1.2, 1.2), 18.0)
    # lungs are denser at the back (gravity-dependent)
    lung_hu += (YY - cy0) * 0.9
    blend(vol, lung, lung_hu)
    lung_mask = lung > 0.5
    lung_idx = np.argwhere(lung_mask)
    lung_pts = np.array([vox_to_mm(v) for v in lung_idx[rng.choice(len(lung_idx), min(400, len(lung_idx)), replace=False)]], np.float32)

    # -- vessels and airways --------------------------------------------------------------------------------------
    vessel = np.zeros(SHAPE, np.float32)
    wall = np.zeros(SHAPE, np.float32)
    lumen = np.zeros(SHAPE, np.float32)
    for side in (-1.0, 1.0):
        pts = lung_pts[(lung_pts[:, 2] - cx0) * side > 0]
        if len(pts) < 10:
            continue
        hilum_x = cx0 + side * cav_x * 0.22
        for zh in (rng.uniform(-25, -10), rng.uniform(-8, 8), rng.uniform(10, 25)):
            start = (zh, cy0 + rng.uniform(-4, 4), hilum_x)
            _tree(rng, vessel, start, (rng.normal(0, 0.5), rng.normal(0, 0.3), side), rng.uniform(1.8, 2.4), 6, pts)
        wall_tmp = np.zeros(SHAPE, np.float32)
        start = (rng.uniform(-6, 6), cy0 - 2.0, hilum_x)
        segs = _tree(rng, wall_tmp, start, (0.0, 0.0, side), rng.uniform(2.4, 3.0), 3, pts, min_r=1.4, shrink=0.8)
        np.maximum(wall, wall_tmp, out=wall)
        for p, q, r0, r1 in segs:
            capsule(lumen, p, q, r0 - 0.9, r1 - 0.9)
    vessel *= lung
    wall *= np.maximum(lung, med)
    lumen *= np.maximum(lung, med)
    blend(vol, np.maximum(vessel - wall, 0.0), rng.uniform(30.0, 50.0))
    blend(vol, wall, rng.uniform(-60.0, 0.0))
    blend(vol, lumen, -990.0)
    # trachea, split at the carina
    tr = np.zeros(SHAPE, np.float32)
    trl = np.zeros(SHAPE, np.float32)
    ty = cy0 - cav_y * 0.15
    carina = (rng.uniform(5.0, 20.0), ty, cx0)
    capsule(tr, (top, ty, cx0), carina, 6.5, 6.0)
    capsule(trl, (top, ty, cx0), carina, 5.2, 4.8)
    for side in (-1.0, 1.0):
        end = (carina[0] - 14.0, ty + 4.0, cx0 + side * cav_x * 0.25)
        capsule(tr, carina, end, 5.0, 3.6)
        capsule(trl, carina, end, 3.9, 2.6)
    blend(vol, tr, -20.0)
    blend(vol, trl, -995.0)

    # -- nodules --------------------------------------------------------------------------------------------------
    if force_cancer is None:
        n_nod = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.42, 0.23, 0.10]))
        p_mal = 0.42 if male else 0.28
        malignant = [bool(rng.random() < p_mal) for _ in range(n_nod)]
    else:
        while True:
            n_nod = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.42, 0.23, 0.10]))
            p_mal = 0.42 if male else 0.28
            malignant = [bool(rng.random() < p_mal) for _ in range(n_nod)]
            if any(malignant) == bool(force_cancer):
                break
    edt = ndimage.distance_transform_edt(lung_mask, sampling=SPACING).astype(np.float32)
    edt[:2] = 0.0
    edt[-2:] = 0.0
    nodule_map = np.zeros(SHAPE, np.int8)
    nodules = []
    solid_acc_all = np.zeros(SHAPE, np.float32)
    for i, mal in enumerate(malignant):
        if mal:
            size = float(8.0 + 22.0 * rng.beta(1.2, 4.0))
            kind = str(rng.choice(["solid", "part-solid", "ggo"], p=[0.55, 0.35, 0.10]))
        else:
            size = float(np.exp(rng.uniform(np.log(3.0), np.log(12.0))))
            kind = str(rng.choice(["solid", "ggo", "calcified"], p=[0.65, 0.2, 0.15]))
        placed = None
        for attempt in range(60):
            need = min(size * 0.35, 6.0) if attempt < 40 else 0.5
            cand = np.argwhere(edt > need)
            if len(cand) == 0:
                continue
            v = cand[rng.integers(len(cand))]
            c = np.array(vox_to_mm(v.astype(np.float32)), np.float32) + rng.uniform(-0.5, 0.5, 3).astype(np.float32) * np.array(SPACING, np.float32)
            ok = all(np.linalg.norm(c - np.array(o["center_mm"])) > (size + o["diameter_mm"]) / 2 + 6.0 for o in nodules)
            if ok:
                placed = c
                break
        if placed is None:
            continue
        parts = _nodule(rng, mal, size, "solid" if kind == "calcified" else kind)
        solid = np.zeros(SHAPE, np.float32)
        ggo = np.zeros(SHAPE, np.float32)
        spic = np.zeros(SHAPE, np.float32)
        for off, radii in parts["solid"]:
            ellipsoid(solid, placed + off, radii)
        for off, radii in parts["ggo"]:
            ellipsoid(ggo, placed + off, radii)
        for a, b, r in parts["spicules"]:
            capsule(spic, placed + a, placed + b, r, 0.5)
        core_hu = rng.uniform(150.0, 400.0) if kind == "calcified" else rng.uniform(0.0, 60.0)
        ggo_hu = rng.uniform(-650.0, -420.0)
        for alpha, hu in ((ggo, ggo_hu), (spic, core_hu - 30.0), (solid, core_hu)):
            mixed = vol * (1.0 - alpha) + alpha * np.float32(hu)
            np.maximum(vol, mixed, out=vol)
        body_cover = np.maximum(solid, ggo)
        nodule_map[(body_cover >= 0.5) & (nodule_map == 0)] = len(nodules) + 1
        np.maximum(solid_acc_all, body_cover, out=solid_acc_all)
        vz = mm_to_vox(placed)
        nodules.append({
            "center_vox": [round(float(x), 3) for x in vz],
            "center_mm": [round(float(x), 3) for x in placed],
            "diameter_mm": round(size, 3),
            "malignant": bool(mal),
            "kind": kind,
        })

    # -- acquisition: blur (point spread + slice thickness), noise, quantisation ---------------------------------
    vol = ndimage.gaussian_filter(vol, (0.45, 0.55, 0.55))
    sigma = rng.uniform(12.0, 28.0)
    vol += smooth_noise(rng, (0.3, 0.5, 0.5), sigma)
    vol = np.clip(np.floor(vol + 0.5), HU_MIN, HU_MAX).astype(np.int16)
    label = {
        "seed": int(seed),
        "shape": list(SHAPE),
        "spacing_mm": list(SPACING),
        "sex": "M" if male else "F",
        "male": int(male),
        "cancer": int(any(n["malignant"] for n in nodules)),
        "nodules": nodules,
    }
    extras = {"nodule_map": nodule_map, "vessel": (vessel > 0.5) & (nodule_map == 0)}
    return vol, label, extras


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output .npy (int16 HU); labels go next to it as .json")
    ap.add_argument("--cancer", choices=["0", "1"], help="force the cancer label")
    ap.add_argument("--sex", choices=["M", "F"], help="force the sex")
    a = ap.parse_args()
    vol, label, _ = generate(a.seed, None if a.cancer is None else a.cancer == "1", a.sex)
    np.save(a.out, vol)
    with open(a.out[:-4] + ".json" if a.out.endswith(".npy") else a.out + ".json", "w") as f:
        json.dump(label, f, indent=1)
    print(json.dumps(label))


if __name__ == "__main__":
    main()
