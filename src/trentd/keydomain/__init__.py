"""The key domain: what a KMS key is, below the API families that answer for it.

The KMS API families (kms/keys.py, kms/imports.py, kms/multiregion.py, kms/rotation.py,
kms/keystores.py, the cryptographic operations, …) hold the handlers; the rules they share about a
key live here, so that no family imports another:

- ``states``: key states, the named rules of which states an operation accepts (a column of the
  operation table), and AWS's wording when a state refuses an operation.
- ``materials``: key material versions: first, rotated, imported, expiring.
- ``multiregion``: multi-Region keys: primary and replicas, MultiRegionConfiguration, deletion.
- ``external``: keys in an external key store: their binding, and their cryptography through the
  store's XKS proxy.
- ``managed``: AWS managed keys: the predefined aliases, their policy, what anyone may do to one.
- ``metadata``: the KeyMetadata that DescribeKey, CreateKey and ReplicateKey answer.
- ``cipher``: encryption under a key's current material (Encrypt, GenerateDataKey, ReEncrypt).
- ``policy``: the default key policy; ``tags``: AWS's rules for the tags of a request.

The domain sits above store, crypto and the XKS client, and imports nothing of kms or auth: where
a rule needs the service (its store, root key or material cache), the service is a parameter
(``svc``).
"""
