"""The original notebook's groups-and-windows algorithm, written plainly, plus the extra reasons.

This is the yardstick for engine/windows.py: dicts in (the parsed JSON files), loops, a linear
scan of the video's clips per run, no cleverness. Keep it obviously correct rather than fast.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def narrations_of(content: dict, narration_pass) -> list[dict]:
    """The video's narrations of the pass selection, stably sorted by time (pass 1 first on ties)."""
    passes = (1, 2) if narration_pass == "both" else (int(narration_pass),)
    out = []
    for p in passes:
        narrs = ((content.get(f"narration_pass_{p}") or {}).get("narrations")) or []
        out.extend(narrs)
    return sorted(out, key=lambda n: n["timestamp_sec"])


def reference(
    ego4d: dict, narration: dict, excluded: set, features: set, k=5, alpha=4.9, min_window=1.0, narration_pass=1
) -> dict:
    """Groups, windows and counts the way the notebook (plus the issue's reasons) defines them.

    Returns {"groups": [(video_uid, first_position, clip_number)], "windows": [dict per window in
    group order], "runs": int, "no_clip": int, "straddle": int, "narrations_no_clip": int}.
    """
    clips = ego4d.get("clips") or []
    clips_by_video: dict[str, list[tuple[int, dict]]] = {}
    for number, clip in enumerate(clips):
        clips_by_video.setdefault(clip["video_uid"], []).append((number, clip))

    groups, windows = [], []
    runs = no_clip = straddle = narrations_no_clip = 0
    for video_uid, content in narration.items():
        if video_uid in excluded or video_uid not in features:
            continue
        video_clips = clips_by_video.get(video_uid, [])
        if not video_clips:
            continue
        narrs = narrations_of(content, narration_pass)
        times = [float(n["timestamp_sec"]) for n in narrs]

        def in_clip(t, clip):
            return float(clip["video_start_sec"]) <= t and t <= float(clip["video_end_sec"])

        narrations_no_clip += sum(1 for t in times if not any(in_clip(t, c) for _, c in video_clips))

        beta = None
        if len(times) >= 2:
            positive = [times[i + 1] - times[i] for i in range(len(times) - 1) if times[i + 1] - times[i] > 0]
            if positive:
                beta = np.mean(positive)
        same_time = Counter(times)

        for i in range(len(narrs) - k + 1):
            runs += 1
            run_times = times[i : i + k]
            parent = next(
                (
                    (num, c)
                    for num, c in video_clips
                    if float(c["video_start_sec"]) <= run_times[0] and float(c["video_end_sec"]) >= run_times[-1]
                ),
                None,
            )
            if parent is None:
                if any(not any(in_clip(t, c) for _, c in video_clips) for t in run_times):
                    no_clip += 1
                else:
                    straddle += 1
                continue
            number, clip = parent
            groups.append((video_uid, i, number))
            cs, ce = float(clip["video_start_sec"]), float(clip["video_end_sec"])
            group_windows = []
            for pos, narr in enumerate(narrs[i : i + k]):
                t = run_times[pos]
                reasons = set()
                if "#unsure" in str(narr.get("narration_text") or "").lower():
                    reasons.add("unsure")
                if same_time[t] > 1:
                    reasons.add("duplicate_time")
                if beta is None:
                    reasons.add("no_beta")
                    start = end = None
                else:
                    d = max(min_window, beta / alpha)
                    start = max(cs, t - (d / 2))
                    end = min(ce, t + (d / 2))
                    if start >= end:
                        reasons.add("collapsed")
                    if cs > t - d / 2 or ce < t + d / 2:
                        reasons.add("clip_edge")
                group_windows.append({"video_uid": video_uid, "t": t, "start": start, "end": end, "reasons": reasons})
            for a, wa in enumerate(group_windows):
                for b, wb in enumerate(group_windows):
                    if a != b and wa["start"] is not None and max(wa["start"], wb["start"]) < min(wa["end"], wb["end"]):
                        wa["reasons"].add("overlap")
            windows.extend(group_windows)
    return {
        "groups": groups,
        "windows": windows,
        "runs": runs,
        "no_clip": no_clip,
        "straddle": straddle,
        "narrations_no_clip": narrations_no_clip,
    }


def notebook_group_count(ego4d: dict, narration: dict, excluded: set, features: set, k: int = 5) -> int:
    """Cell 1.6 of the notebook, nearly verbatim: the number of valid groups."""
    video_to_clips_map = {}
    for clip in ego4d.get("clips", []):
        video_to_clips_map.setdefault(clip.get("video_uid"), []).append(clip)
    count = 0
    for video_uid, video_content in narration.items():
        if video_uid in excluded or video_uid not in features:
            continue
        clips_for_this_video = video_to_clips_map.get(video_uid, [])
        if not clips_for_this_video:
            continue
        narrations_list = list(video_content.get("narration_pass_1", {}).get("narrations", []))
        if len(narrations_list) < k:
            continue
        narrations_list.sort(key=lambda x: x["timestamp_sec"])
        for i in range(len(narrations_list) - k + 1):
            current_group = narrations_list[i : i + k]
            t0 = current_group[0]["timestamp_sec"]
            t1 = current_group[-1]["timestamp_sec"]
            parent = next(
                (c for c in clips_for_this_video if c["video_start_sec"] <= t0 and c["video_end_sec"] >= t1), None
            )
            if parent:
                count += 1
    return count
