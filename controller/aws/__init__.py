"""The one way Pointsman talks to AWS, and how it stays under AWS's quotas.

- :mod:`controller.aws.clients`: the client factory (a boto3 session, retries, the endpoint from
  the standard AWS variables), which counts every call by operation, so tests and benchmarks can
  assert "a converged reconcile makes zero write calls"; AWS errors turned into one line;
- :mod:`controller.aws.ratelimit`: client-side pacing, one token bucket per AWS quota bucket
  (Lambda's control plane, GetPolicy, API Gateway's management API...), shared by every thread
  and every client of one account and Region, halved on throttling and won back per success;
  reads take only their share of each (``--quota-share``), writes the whole quota.

Nothing here knows what Pointsman manages; every layer above uses it.
"""
