"""Call a Pastiche style on Triton over gRPC with tritonclient.

Usage: python client_grpc.py HOST:PORT STYLE [VERSION]  (e.g. 127.0.0.1:8001 watercolor)
"""

import sys

import numpy as np
import tritonclient.grpc as grpcclient
from skimage import data

url, style = sys.argv[1], sys.argv[2]
version = sys.argv[3] if len(sys.argv) > 3 else ""  # "" = the live (newest loaded) version

client = grpcclient.InferenceServerClient(url)
config = client.get_model_config(style, as_json=True)["config"]
multiple = int(config["parameters"]["size_multiple"]["string_value"])
photos = np.stack([data.astronaut()[:128, :128], data.chelsea()[:128, :128]])  # [2, H, W, 3] uint8
assert photos.shape[1] % multiple == 0 and photos.shape[2] % multiple == 0

image = grpcclient.InferInput("image", list(photos.shape), "UINT8")
image.set_data_from_numpy(photos)
result = client.infer(style, [image], model_version=version, outputs=[grpcclient.InferRequestedOutput("stylized")])
output = result.as_numpy("stylized")
print(f"{style} version {result.get_response().model_version}: {output.dtype} {list(output.shape)}")
client.close()
