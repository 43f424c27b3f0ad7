"""Call a Pastiche style on Triton over HTTP with tritonclient (binary tensor data).

Usage: python client_http.py HOST:PORT STYLE [VERSION]  (e.g. 127.0.0.1:8000 watercolor)
"""

import sys

import numpy as np
import tritonclient.http as httpclient
from skimage import data

url, style = sys.argv[1], sys.argv[2]
version = sys.argv[3] if len(sys.argv) > 3 else ""  # "" = the live (newest loaded) version

client = httpclient.InferenceServerClient(url)
multiple = int(client.get_model_config(style)["parameters"]["size_multiple"]["string_value"])
photo = data.astronaut()[:256, :256]  # uint8 RGB, H and W multiples of size_multiple
assert photo.shape[0] % multiple == 0 and photo.shape[1] % multiple == 0
batch = photo[np.newaxis]  # [1, H, W, 3]

image = httpclient.InferInput("image", list(batch.shape), "UINT8")
image.set_data_from_numpy(batch, binary_data=True)  # raw bytes, not a JSON list
stylized = httpclient.InferRequestedOutput("stylized", binary_data=True)
result = client.infer(style, [image], model_version=version, outputs=[stylized])
output = result.as_numpy("stylized")
print(f"{style} version {result.get_response()['model_version']}: {output.dtype} {list(output.shape)}")
client.close()
