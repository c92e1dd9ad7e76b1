"""The IAM API (issue #25): users, access keys, roles, groups, inline and managed policies, over
the same store the admin commands use, so that `aws iam`, boto3 and Terraform manage trentd's
principals unchanged.

Requests whose SigV4 scope names service ``iam`` (any Region: IAM is global) run through the
request pipeline (trentd/pipeline) like STS's: AWS's Query protocol, XML answers
(protocol/query.py), the operation table in operations.py, one module per entity family.
"""
