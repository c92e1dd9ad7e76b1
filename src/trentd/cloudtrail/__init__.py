"""CloudTrail on the KMS endpoint: LookupEvents over the central audit trail (issue #24).

The operation and its row are operations.py, the lookup lookup.py, its NextToken tokens.py; the
request pipeline (trentd/pipeline) runs it from requests whose SigV4 scope names service
``cloudtrail`` (AWS JSON 1.1, target prefix ``com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101``).
The events it reads are the central trail's (store/trail_query.py).
"""
