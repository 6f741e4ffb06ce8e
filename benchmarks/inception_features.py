r"""How long the FID Inception network takes to extract the features of N images.

    python benchmarks/inception_features.py --num_images=10000 \
        [--inception_weights=pt_inception-2015-12-05-6726825d.pth]

Fashion-MNIST test images (28x28 grey, resized to 299x299 as every input is, so the cost
per image does not depend on the data), in jaxgan.eval.features.extract's batches of 50.
Without --inception_weights the network gets random weights of the file's shapes (the
same work). Prints the compile time (the first batch) and the images per second after it.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxgan import data  # noqa: E402
from jaxgan.eval import features, inception  # noqa: E402

flags.DEFINE_integer("num_images", 10_000, "Images to extract features of.")
flags.DEFINE_string("inception_weights", None, "pytorch-fid's weights (default: random).")
flags.DEFINE_string("data_dir", "/usr/share/datasets/fashion-mnist", "IDX folder.")
FLAGS = flags.FLAGS


def random_extractor() -> inception.InceptionExtractor:
  rng = np.random.default_rng(0)
  arrays = {k: rng.normal(0, 0.05, s).astype(np.float32) + (k.endswith("running_var"))
            for k, s in inception.expected_shapes().items()}
  return inception.InceptionExtractor(
      inception.variables_from_state_dict(arrays, "random"), "random", False, "random")


def main(argv):
  del argv
  extractor = (inception.InceptionExtractor.from_file(FLAGS.inception_weights)
               if FLAGS.inception_weights else random_extractor())
  test = data.load_dataset("", FLAGS.data_dir, "test").images
  images = np.resize(test, (FLAGS.num_images,) + test.shape[1:])
  batch = extractor.batch_size
  t0 = time.perf_counter()
  jax.block_until_ready(features.extract(extractor, images[:batch]))
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  feats, _ = features.extract(extractor, images)
  jax.block_until_ready(feats)
  seconds = time.perf_counter() - t0
  print(f"{FLAGS.num_images} images: {seconds:.1f} s ({FLAGS.num_images / seconds:.1f} "
        f"images/s) after the first batch of {batch} ({compile_s:.1f} s with compiling); "
        f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
  app.run(main)
