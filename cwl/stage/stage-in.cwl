cwlVersion: v1.2
$namespaces:
  s: https://schema.org/

s:name: mlmkit-stage-in
s:softwareVersion: "0.2.0"
s:description: >-
  Stages STAC documents by URL for an EO Application Package: copies a STAC Item (or a catalog or
  collection with its Items) and its assets into a directory with catalog.json. Every staged document keeps a
  canonical link to its URL, so results derived from it name the published document.
s:dateCreated: "2026-11-22"
s:license:
  class: s:CreativeWork
  s:name: Apache-2.0
  s:url: https://www.apache.org/licenses/LICENSE-2.0
s:keywords: [STAC, stage-in, EO Application Package, Earth observation]
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
id: mlmkit-stage-in
label: STAC stage-in
doc: >-
  Downloads the STAC Item, Catalog or Collection at the URL, with its Items and their assets, into a directory
  holding catalog.json (mlmkit stage-in). For an MLM Item this brings its model and runtime assets.
hints:
  - class: DockerRequirement
    dockerPull: mlmkit:0.2.0
requirements:
  - class: SchemaDefRequirement
    types:
      - $import: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml
  - class: NetworkAccess
    networkAccess: true
  - class: ResourceRequirement
    coresMin: 1
    coresMax: 1
    ramMin: 256
    ramMax: 1024
baseCommand: [mlmkit, stage-in]
arguments:
  - $(inputs.reference.value)
  - prefix: --output
    valueFrom: staged
inputs:
  reference:
    type: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
    label: STAC document URL
    doc: URL of a STAC Item, Catalog or Collection to stage.
outputs:
  staged:
    type: Directory
    label: Staged catalog
    doc: Directory with catalog.json, the staged documents and their assets.
    outputBinding:
      glob: staged
