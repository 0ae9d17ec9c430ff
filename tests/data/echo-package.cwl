cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:version: "1.0.0"
s:softwareVersion: "1.0.0"
s:name: echo-message
$graph:
  - class: Workflow
    id: echo-message
    label: Echo a message
    doc: Writes its message to a file (a small job for the load test of mlmkit serve).
    inputs:
      message:
        type: string
        label: Message
        doc: The text written to the output file.
    outputs:
      echoed:
        type: File
        outputSource: echo/echoed
        label: Echoed message
        doc: A file holding the message.
    steps:
      echo:
        run: "#echo"
        in:
          message: message
        out: [echoed]
  - class: CommandLineTool
    id: echo
    label: echo
    doc: echo MESSAGE > message.txt
    hints:
      - class: DockerRequirement
        dockerPull: debian:bookworm-slim
    requirements:
      - class: ResourceRequirement
        coresMin: 1
        coresMax: 1
        ramMin: 64
        ramMax: 128
    baseCommand: [echo]
    stdout: message.txt
    inputs:
      message:
        type: string
        inputBinding:
          position: 1
    outputs:
      echoed:
        type: stdout
