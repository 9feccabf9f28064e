"""Reads a TensorBoard log directory with TensorBoard's own loader, for the hparams test.

Usage: python3 scripts/reference/read_tb_summary.py LOGDIR
Prints JSON: {"hparams": {name: value}, "status": int, "start": float, "end": float,
"scalars": {tag: [[step, value], ...]}}. Needs the tensorboard package (pip install tensorboard).
"""

import json
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    hparams = {k: json_format.MessageToDict(v) for k, v in start.session_start_info.hparams.items()}
    scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    print(json.dumps({
        "hparams": hparams,
        "status": end.session_end_info.status,
        "start": start.session_start_info.start_time_secs,
        "end": end.session_end_info.end_time_secs,
        "scalars": scalars,
    }))


if __name__ == "__main__":
    main()
