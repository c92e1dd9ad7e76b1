// A round trip with the AWS SDK for JavaScript v3 against trentd (run by tests/clients/test_js_sdk.py).
// The JS SDK parses timestamps strictly (JSON numbers only) and signs content-length and
// x-amz-content-sha256: the non-Python client that catches serialization and signing mistakes.
// Endpoint, Region and credentials come from the environment (AWS_ENDPOINT_URL_KMS, AWS_REGION,
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); a CA from NODE_EXTRA_CA_CERTS. Prints one JSON object.
import {
  KMSClient, CreateKeyCommand, DescribeKeyCommand, CreateAliasCommand, ListAliasesCommand, EncryptCommand,
  DecryptCommand, GenerateDataKeyCommand, ListKeysCommand, ScheduleKeyDeletionCommand, KMSServiceException,
} from "@aws-sdk/client-kms";

const kms = new KMSClient({ maxAttempts: 1 });
const out = {};
const context = { app: "js", stage: "test" };

const created = await kms.send(new CreateKeyCommand({ Description: "js sdk", Tags: [{ TagKey: "k", TagValue: "v" }] }));
const keyId = created.KeyMetadata.KeyId;
out.createdIsDate = created.KeyMetadata.CreationDate instanceof Date && !isNaN(created.KeyMetadata.CreationDate);
out.createdYear = created.KeyMetadata.CreationDate.getUTCFullYear();

const alias = `alias/js-${keyId.slice(0, 8)}`;
await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
const described = await kms.send(new DescribeKeyCommand({ KeyId: alias }));
out.describedKeyId = described.KeyMetadata.KeyId;
out.keyArn = described.KeyMetadata.Arn;

const aliases = await kms.send(new ListAliasesCommand({ KeyId: keyId }));
out.aliasNames = aliases.Aliases.map((a) => a.AliasName);
out.aliasDatesAreDates = aliases.Aliases.every((a) => a.CreationDate instanceof Date && !isNaN(a.CreationDate));

const plaintext = new TextEncoder().encode("hello from node \u00e9");
const encrypted = await kms.send(new EncryptCommand({ KeyId: alias, Plaintext: plaintext, EncryptionContext: context }));
const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: context }));
out.decrypted = new TextDecoder().decode(decrypted.Plaintext);
out.decryptKeyId = decrypted.KeyId;

try {
  await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { app: "other" } }));
  out.wrongContext = "decrypted";
} catch (err) {
  out.wrongContext = err instanceof KMSServiceException ? err.name : String(err);
  out.wrongContextStatus = err.$metadata?.httpStatusCode;
}

const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256" }));
out.dataKeyBytes = dataKey.Plaintext.length;

const keys = await kms.send(new ListKeysCommand({ Limit: 100 }));
out.listed = keys.Keys.some((k) => k.KeyId === keyId);

const deletion = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
out.deletionIsDate = deletion.DeletionDate instanceof Date && !isNaN(deletion.DeletionDate);
out.deletionDays = Math.round((deletion.DeletionDate - created.KeyMetadata.CreationDate) / 86400000);

console.log(JSON.stringify(out));
