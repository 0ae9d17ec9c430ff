cwlVersion: v1.2
$namespaces:
  s: https://schema.org/

s:name: mlmkit-stage-out
s:softwareVersion: "0.2.0"
s:description: >-
  Stages out the STAC catalog an EO Application Package wrote: uploads catalog.json, its Items and
  their assets to S3 (or an S3-compatible store) and returns the URL of the uploaded catalog.json.
s:dateCreated: "2026-11-22"
s:license:
  class: s:CreativeWork
  s:name: Apache-2.0
  s:url: https://www.apache.org/licenses/LICENSE-2.0
s:keywords: [STAC, stage-out, S3, EO Application Package, Earth observation]
s:softwareHelp:
  class: s:CreativeWork
  s:name: mlmkit deployment guide
  s:url: https://github.com/mlmkit/mlmkit/blob/main/docs/how-to/deploy.md
s:codeRepository: https://github.com/mlmkit/mlmkit
s:author:
  - class: s:Person
    s:givenName: mlmkit
    s:familyName: maintainers
    s:email: maintainers@mlmkit.dev
    s:affiliation:
      class: s:Organization
      s:name: mlmkit project
s:publisher:
  class: s:Organization
  s:name: mlmkit project
  s:email: maintainers@mlmkit.dev

class: CommandLineTool
id: mlmkit-stage-out
label: STAC stage-out to S3
doc: >-
  Uploads a self-contained STAC catalog directory to s3_url (mlmkit stage-out): assets first, then Items, then
  catalog.json, so the catalog never names a missing file. Prints the URL of the uploaded catalog.json.
hints:
  - class: DockerRequirement
    dockerPull: mlmkit:0.2.0
requirements:
  - class: SchemaDefRequirement
    types:
      - $import: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml
  - class: InlineJavascriptRequirement
  - class: NetworkAccess
    networkAccess: true
  - class: EnvVarRequirement
    envDef:
      AWS_ACCESS_KEY_ID: $(inputs.aws_access_key_id)
      AWS_SECRET_ACCESS_KEY: $(inputs.aws_secret_access_key)
      AWS_DEFAULT_REGION: $(inputs.region_name)
  - class: ResourceRequirement
    coresMin: 1
    coresMax: 1
    ramMin: 256
    ramMax: 1024
baseCommand: [mlmkit, stage-out]
arguments:
  - prefix: --s3-url
    valueFrom: $(inputs.s3_url)
  - prefix: --endpoint-url
    valueFrom: $(inputs.endpoint_url)
stdout: catalog-uri.txt
inputs:
  catalog:
    type: Directory
    label: STAC catalog
    doc: The directory with catalog.json to upload.
    inputBinding:
      position: 1
  s3_url:
    type: string
    label: S3 URL
    doc: Where the catalog goes, s3://BUCKET/PREFIX; catalog.json lands at s3://BUCKET/PREFIX/catalog.json.
  endpoint_url:
    type: string?
    label: S3 endpoint
    doc: Endpoint of an S3-compatible store (MinIO, Ceph); default AWS.
  aws_access_key_id:
    type: string
    label: Access key id
    doc: Access key id for the bucket.
  aws_secret_access_key:
    type: string
    label: Secret access key
    doc: Secret access key for the bucket.
  region_name:
    type: string
    label: Region
    doc: Region of the bucket, e.g. us-east-1.
outputs:
  s3_catalog_output:
    type: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
    label: Results catalog URL
    doc: s3:// URL of the uploaded catalog.json.
    outputBinding:
      glob: catalog-uri.txt
      loadContents: true
      outputEval: '${ return {"value": self[0].contents.trim()}; }'
