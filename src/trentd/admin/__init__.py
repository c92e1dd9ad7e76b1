"""What the ``trentd`` commands do, one module per command family; cli.py parses the command
line and hands each command here. Only cli imports this package; it may import every layer below.

- ``serve``: ``trentd serve``, from the parsed options to a running server
- ``migrate``: ``trentd migrate``, the schema and first start before servers start
- ``principals``: ``trentd principals`` (users, roles, their identity and trust policies) and
  ``trentd access-keys``
- ``policies``: ``trentd policies``, customer managed policies (AssumeRole ``PolicyArns``)
- ``sessions``: ``trentd sessions revoke``, denying sessions issued before a time
- ``audit``: ``trentd audit verify|tail|search|hash`` (the readers live in audit/reader.py)
- ``root_key``: ``trentd root-key rotate``, rewrapping every stored secret under a new root key
- ``transfer``: ``trentd keys transfer-key|export|import``, key bundles between instances
- ``seed``: ``trentd seed import``, local-kms seed files
- ``compat``: writes docs/compatibility.md (``python -m trentd.admin.compat``)
- ``common``: what the commands share: opening the store, printing JSON
"""
