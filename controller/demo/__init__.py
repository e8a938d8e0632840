"""``pointsman demo``: Pointsman against an embedded AWS emulator and a local git repository.

- :mod:`controller.demo.run`: starts moto's server on 127.0.0.1, seeds the example estate, makes
  a local repository from ``desired_state/``, and runs the controller against both;
- :mod:`controller.demo.estate`: the example estate's pre-existing infrastructure (functions,
  versions, APIs, domains: what CI or the console made before Pointsman), and a hand-built API
  that no spec declares, for ``pointsman import``;
- :mod:`controller.demo.emulator`: fixes for the emulator's known gaps.
"""
