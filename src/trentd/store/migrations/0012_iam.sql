-- The IAM API (issue #25): the principal tables grow what IAM shows of users, roles and groups;
-- managed policies get versions and attachments; access keys a status. The admin commands and
-- the IAM API read and write these same rows.

-- Users, roles and (new) groups: kind 'user', 'role' or 'group'. entity_id is the AIDA…/AROA…/
-- AGPA… id (NULL on rows made before this version: trentd derives it from the ARN, as it always
-- has). Names are unique per account and kind regardless of case, as IAM's are.
ALTER TABLE principals ADD COLUMN entity_id TEXT;
ALTER TABLE principals ADD COLUMN path TEXT NOT NULL DEFAULT '/';
ALTER TABLE principals ADD COLUMN description TEXT;
ALTER TABLE principals ADD COLUMN max_session_duration INTEGER NOT NULL DEFAULT 3600;
CREATE UNIQUE INDEX principals_name_nocase ON principals (account, kind, lower(name));

-- An inactive access key is refused on every service, as AWS refuses it.
ALTER TABLE access_keys ADD COLUMN status TEXT NOT NULL DEFAULT 'Active';

-- When each long-term access key was last used, where (GetAccessKeyLastUsed): flushed from each
-- process's memory once a second; no cache depends on it.
CREATE TABLE access_key_last_used (
    access_key_id TEXT PRIMARY KEY,
    used_at       DOUBLE PRECISION NOT NULL,
    service       TEXT NOT NULL,
    region        TEXT NOT NULL
);

-- Tags of users, roles and managed policies, by ARN.
CREATE TABLE iam_tags (
    arn       TEXT NOT NULL,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (arn, tag_key)
);

CREATE TABLE iam_group_members (
    group_arn TEXT NOT NULL,
    user_arn  TEXT NOT NULL,
    PRIMARY KEY (group_arn, user_arn)
);
CREATE INDEX iam_group_members_user ON iam_group_members (user_arn);

-- Managed policies attached to a user, role or group (inline policies stay in identity_policies,
-- keyed by the user's, role's or group's ARN).
CREATE TABLE iam_policy_attachments (
    entity_arn TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (entity_arn, policy_arn)
);
CREATE INDEX iam_policy_attachments_policy ON iam_policy_attachments (policy_arn);

-- Versions of managed policies; managed_policies.document stays the default version's document
-- (what STS PolicyArns and authorization read).
CREATE TABLE iam_policy_versions (
    policy_arn TEXT NOT NULL,
    version_id TEXT NOT NULL,
    document   TEXT NOT NULL,
    created    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (policy_arn, version_id)
);
ALTER TABLE managed_policies ADD COLUMN policy_id TEXT;
ALTER TABLE managed_policies ADD COLUMN path TEXT NOT NULL DEFAULT '/';
ALTER TABLE managed_policies ADD COLUMN description TEXT;
ALTER TABLE managed_policies ADD COLUMN default_version TEXT NOT NULL DEFAULT 'v1';
ALTER TABLE managed_policies ADD COLUMN next_version INTEGER NOT NULL DEFAULT 2;
ALTER TABLE managed_policies ADD COLUMN updated DOUBLE PRECISION;
INSERT INTO iam_policy_versions (policy_arn, version_id, document, created)
    SELECT arn, 'v1', document, created FROM managed_policies;

-- AWS managed policies that configurations commonly attach (docs/iam.md: ReadOnlyAccess is a
-- subset of AWS's document, reduced to the services trentd serves).
INSERT INTO managed_policies (arn, account, name, document, created, policy_id, path, description, default_version, next_version, updated) VALUES ('arn:aws:iam::aws:policy/AdministratorAccess', 'aws', 'AdministratorAccess', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}', 1423247986.0, 'ANPAIWMBCKSKIEE64ZLYK', '/', 'Provides full access to AWS services and resources.', 'v1', 2, 1423247986.0);
INSERT INTO iam_policy_versions (policy_arn, version_id, document, created) VALUES ('arn:aws:iam::aws:policy/AdministratorAccess', 'v1', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}', 1423247986.0);
INSERT INTO managed_policies (arn, account, name, document, created, policy_id, path, description, default_version, next_version, updated) VALUES ('arn:aws:iam::aws:policy/ReadOnlyAccess', 'aws', 'ReadOnlyAccess', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Generate*","iam:Get*","iam:List*","iam:Simulate*","kms:Describe*","kms:Get*","kms:List*","sts:GetAccessKeyInfo","sts:GetCallerIdentity","sts:GetSessionToken"],"Resource":"*"}]}', 1423247986.0, 'ANPAILL3HVNFSB6DCOWYQ', '/', 'Provides read-only access to AWS services and resources.', 'v1', 2, 1423247986.0);
INSERT INTO iam_policy_versions (policy_arn, version_id, document, created) VALUES ('arn:aws:iam::aws:policy/ReadOnlyAccess', 'v1', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Generate*","iam:Get*","iam:List*","iam:Simulate*","kms:Describe*","kms:Get*","kms:List*","sts:GetAccessKeyInfo","sts:GetCallerIdentity","sts:GetSessionToken"],"Resource":"*"}]}', 1423247986.0);
INSERT INTO managed_policies (arn, account, name, document, created, policy_id, path, description, default_version, next_version, updated) VALUES ('arn:aws:iam::aws:policy/AWSKeyManagementServicePowerUser', 'aws', 'AWSKeyManagementServicePowerUser', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:CreateAlias","kms:CreateKey","kms:DeleteAlias","kms:Describe*","kms:GenerateRandom","kms:Get*","kms:List*","kms:TagResource","kms:UntagResource","iam:ListGroups","iam:ListRoles","iam:ListUsers"],"Resource":"*"}]}', 1423247986.0, 'ANPAJNPP7PPPPMJRV2SA4', '/', 'Provides access to AWS Key Management Service (KMS).', 'v1', 2, 1423247986.0);
INSERT INTO iam_policy_versions (policy_arn, version_id, document, created) VALUES ('arn:aws:iam::aws:policy/AWSKeyManagementServicePowerUser', 'v1', '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:CreateAlias","kms:CreateKey","kms:DeleteAlias","kms:Describe*","kms:GenerateRandom","kms:Get*","kms:List*","kms:TagResource","kms:UntagResource","iam:ListGroups","iam:ListRoles","iam:ListUsers"],"Resource":"*"}]}', 1423247986.0);
